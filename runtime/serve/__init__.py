"""The in-container side: `hud serve`, the runtime daemon, and what it runs.

    daemon        lifecycle: load the env, initialize hooks, capabilities, listen, shut down
    connections   the control server: connections, framing, TCP admission, dispatch
    methods       the session methods (hello, tasks.*, bye)
    sessions      who owns which started task, across dropped connections
    runner        driving one task's generator: start, grade, cancel
    stall         template code that blocks the event loop fails only its own call
    tunnel        a control connection turned into a byte pipe to one capability
    mux           `hud connect --mux`: every stream of a container over one exec (SSH)
    loader        finding and importing an environment module

Nothing here imports the host side (build, eval, agents, rich, provider SDKs, ray);
tests/test_layering.py enforces it.
"""
