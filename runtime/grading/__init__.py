"""Grading in the daemon: running the agent's code as `hud-grader`, bounded, and
cleaning up after it. Authors use `hud.graders`; this package is its machinery.

    sandbox     the grading user, a private folder, the agent's files copied in
    bounded     time, memory, processes, file size and output limits on one program
    harness     the script run inside the sandbox (python -I) that calls the agent's code
    calls       hidden-input cases and the reading of the harness's report
    leftovers   what the grading user left behind (files, IPC), found and removed
"""
