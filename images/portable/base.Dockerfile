# hud base layer on any root: the portable runtime carried into an image of your own.
#
#   docker build -f base.Dockerfile --build-arg BASE_IMAGE=IMG \
#     --build-arg PORTABLE_IMAGE=hud-portable:VERSION -t hud-base:VERSION-on-IMG images/portable
#
# What the Debian base layer (images/base) gives, on a root that has no Python, an older
# one, another libc or no package manager: hud's own interpreter and libraries under
# /opt/hud (the image's are neither used nor changed), users `agent` (uid 1000) and
# `hud-grader`, /workspace, the root-only /opt/hud/env, tini as PID 1, the HEALTHCHECK.
# Only /opt/hud/bin (hud, the entrypoint, pip-staged) goes on PATH, so the image's own
# python3 and tools stay what `docker exec` and task code find.
ARG BASE_IMAGE
ARG PORTABLE_IMAGE

FROM ${PORTABLE_IMAGE} AS portable

FROM ${BASE_IMAGE}
# the daemon is root, whatever user the image runs as
USER root
COPY --from=portable /opt/hud/ /opt/hud/
# users, folders and the programs the root lacks, by hud's own Python: the root may have
# no shell and no useradd (runtime/build/graft.py); fails if a library leaks in
RUN ["/opt/hud/venv/bin/python3", "-I", "-m", "hud.build.graft"]

ENV HUD_ENV=/opt/hud/env \
    PATH=/opt/hud/bin:${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}
WORKDIR /workspace

HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 CMD ["/opt/hud/bin/hud", "health"]
ENTRYPOINT ["/opt/hud/tools/tini", "--", "/opt/hud/bin/entrypoint"]
CMD ["hud", "serve"]
