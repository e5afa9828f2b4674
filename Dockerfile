# syntax=docker/dockerfile:1
# Gatehouse image: a static binary on an empty base, run as a non-root
# user, no shell. Build:
#   docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) -t gatehouse .

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=
RUN VERSION="$VERSION" COMMIT="$COMMIT" OUT=/out/gatehouse sh deploy/build.sh
# The final image has no tools to create users or directories: prepare
# them here.
RUN echo 'gatehouse:x:65532:65532:gatehouse:/var/lib/gatehouse:/nonexistent' > /out/passwd && \
    echo 'gatehouse:x:65532:' > /out/group && \
    mkdir -p /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
COPY --from=build /out/gatehouse /gatehouse
USER 65532:65532
ENV GATEHOUSE_LISTEN=0.0.0.0:30100 \
    GATEHOUSE_DATA=/var/lib/gatehouse
VOLUME /var/lib/gatehouse
EXPOSE 30100
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/gatehouse", "healthcheck", "--url", "http://127.0.0.1:30100/readyz"]
ENTRYPOINT ["/gatehouse"]
CMD ["serve"]
