"""Capability servers: the daemons `hud serve` starts inside the container.

    ssh         the `ssh` capability: an asyncssh server, the agent's shell and files
    shells      one ssh channel bridged to one process run as the workspace user
    mcp         the `mcp` capability: the environment's tools over the official MCP SDK
    chromium    the `cdp` capability: Debian's Chromium, headless, as the agent
    desktop     the `rfb` capability: an X display with a window manager, over VNC
    users       who the agent's processes run as, their environment and their processes
    service     long-running programs a capability owns (chromium, Xvnc, ...)
    scratch     resetting what the agent can write, as the agent

The `robot` capability has its own package, `hud.robot`.
"""
