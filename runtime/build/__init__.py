"""The host's image build: `hud build`, `hud images` and `hud init` run on this.

    env_image   an environment directory -> a Docker image with its manifest
    layers      the hud base image layers (base, browser, desktop): names, order, build
    rootfs      a Debian root filesystem image from debootstrap, with no registry
    foreign     `--base-image` on a root that is not Debian 12: the way in, its two images
    portable    the runtime as one self-contained tree (interpreter, libraries, tools)
    graft       fits that tree into a root (runs in the image, on the carried Python)
    accounts    the agent and grading users, written into /etc/passwd and friends
    wheelhouse  every Python package an image needs, fetched on the host
    docker      the one module that runs the docker CLI (sync and async)
    scaffold    a new environment folder from a shipped template
    assets      where the shipped images/ and templates/ folders are

Not to be confused with the repository's top-level `images/` folder: those are the
Dockerfiles this package builds.
"""
