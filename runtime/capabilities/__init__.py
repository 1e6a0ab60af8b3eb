"""Capability servers: the daemons `hud serve` starts inside the container.

    ssh         the `ssh` capability: an asyncssh server, the agent's shell and files
    shells      asyncssh's side of `ssh`: listener, auth policy, one channel per process
    mcp         the `mcp` capability: the environment's tools over the official MCP SDK
    chromium    the `cdp` capability: Debian's Chromium, headless, as the agent
    desktop     the `rfb` capability: an X display with a window manager, over VNC
    users       who the agent's processes run as, their environment and their processes
    service     long-running programs a capability owns (chromium, Xvnc, ...)
    scratch     resetting what the agent can write, as the agent
    activation  listening at start, loading a capability's server at its first client

The `robot` capability has its own package, `hud.robot`.
"""
