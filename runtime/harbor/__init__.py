"""Harbor tasks in and out: a Harbor task directory ↔ a hud environment.

    config     task.toml and a task directory, read and checked (both sides)
    env        the hud Environment an imported env dir serves (in the container):
               instruction → prompt, tests/test.sh → reward, solution/solve.sh → oracle
    verifier   running tests/test.sh as Harbor does and reading its reward file
               (in the container)
    importer   `hud harbor import DIR... -o ENV` (host)
    base       `hud build` of such an env: the tasks' environment/ image first, as the
               base image the runtime is added onto (host)
    exporter   `hud harbor export ENV -o DIR` (host)

Nothing is imported here, so the in-container modules never load the host side.
"""
