# syntax=docker/dockerfile:1
# A static binary on a distroless base, running as non-root.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
# .cargo/config.toml carries jemalloc's built-in configuration.
COPY .cargo ./.cargo
COPY src ./src
RUN cargo build --release --locked --target x86_64-unknown-linux-musl --bin harness-guard \
    && cp target/x86_64-unknown-linux-musl/release/harness-guard /harness-guard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /harness-guard /harness-guard
USER 65532:65532
ENTRYPOINT ["/harness-guard"]
CMD ["serve"]
