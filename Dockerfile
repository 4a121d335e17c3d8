# Berth in a container: one static binary on an empty base image.
#
# Full build (where base images can be pulled):
#   docker build -t berth .
# Packaging a binary built on the host (no pulls needed):
#   mkdir -p ctx/data && cp "$(scripts/static-binary.sh)" ctx/berth
#   docker build --target runtime -t berth -f Dockerfile ctx
#
# Run: docker run -p 5000:5000 -v berth-data:/data berth
# The health check runs `berth health`, which asks the address BERTH_LISTEN
# names, so it follows a changed port.

# --- runtime: a host-built binary (docker build --target runtime) -------------
# First, so that builders that build every stage up to the target (docker's
# legacy builder) never need the Rust base image for it.
# The context holds the binary and an empty data/ directory (scratch has no
# mkdir): /data must belong to the unprivileged user the registry runs as.
FROM scratch AS runtime
ARG BINARY=berth
COPY ${BINARY} /berth
COPY --chown=65534:65534 data /data
USER 65534:65534
ENV BERTH_LISTEN=0.0.0.0:5000 BERTH_DATA_DIR=/data
WORKDIR /data
VOLUME /data
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s CMD ["/berth", "health"]
ENTRYPOINT ["/berth"]
CMD ["serve"]

# --- build: a static binary (glibc, statically linked) ------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN mkdir -p /out/data && cp "$(scripts/static-binary.sh)" /out/berth

# --- default: the binary built above ------------------------------------------
FROM scratch
COPY --from=build /out/berth /berth
COPY --from=build --chown=65534:65534 /out/data /data
USER 65534:65534
ENV BERTH_LISTEN=0.0.0.0:5000 BERTH_DATA_DIR=/data
WORKDIR /data
VOLUME /data
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s CMD ["/berth", "health"]
ENTRYPOINT ["/berth"]
CMD ["serve"]
