"""Protocol clients: how the host (and `hud task`) talks to a running environment.

Host only: channel, mux, bindings, attach, untrusted. Both sides: control (behind `hud task`
in the container), cdp/page/devtools and rfb (capabilities check their own Chromium and
display with them).

    control     the small synchronous control client behind `hud task ...` (no pydantic)
    channel     the async control channel over any byte stream, and tunnels through it
    mux         the host end of `hud connect --mux`: many streams over one exec (SSH)
    bindings    typed clients for a manifest's capabilities (ssh, mcp, cdp, rfb) over tunnels
    attach      `hud.attach`: the host library's front door to a running container
    untrusted   a container's manifest read on the host, parsed strictly
    cdp, page   a small Chrome DevTools Protocol client and one tab on top of it
    devtools    what cdp and page share: errors, timeouts, the connection a tab needs
    rfb         a small asyncio VNC client: screenshots and input
"""
