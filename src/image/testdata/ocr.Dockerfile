# Written by `ferry build --eject`: the same layers, in the same order, as `ferry build`.
#   docker build -t IMAGE .
# Works with the classic builder (Docker 20.10) and BuildKit. COPY keeps the file modes of this context
# (files 0444, directories 0555: read-only for the non-root user); keep them when copying it (cp -a, tar -p).
FROM localhost:5000/ferry/base:node20

# 1. runtime: the bundled model server and onnxruntime-node for Linux x64; changes only with the Ferry version, so every model built by that version shares it
COPY --chown=0:0 layers/1-runtime/ /

# 2. npm-dependencies: the model's npm dependencies (from its lockfile); below the weights and code because they change less often
COPY --chown=0:0 layers/2-npm-dependencies/ /

# 3. handler: the handler compiled to one ES module; small and changes often, so near the top
COPY --chown=0:0 layers/3-handler/ /

# 4. metadata: ferry.yaml and the example requests/responses; tiny and the most often edited, so on top
COPY --chown=0:0 layers/4-metadata/ /

WORKDIR /app
ENV NODE_ENV="production" \
    FERRY_MODEL_DIR="/app/model"
LABEL "dev.ferry.model.format"="handler" \
      "dev.ferry.model.name"="ocr" \
      "dev.ferry.model.version"="1" \
      "dev.ferry.version"="0.1.0" \
      "org.opencontainers.image.base.name"="localhost:5000/ferry/base:node20" \
      "org.opencontainers.image.created"="1970-01-01T00:00:00Z" \
      "org.opencontainers.image.revision"="0123456789abcdef0123456789abcdef01234567" \
      "org.opencontainers.image.source"="https://git.example.com/models/ferry.git" \
      "org.opencontainers.image.title"="ocr" \
      "org.opencontainers.image.version"="1"
EXPOSE 8080/tcp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 CMD ["node","-e","fetch('http://127.0.0.1:'+(process.env.FERRY_PORT||8080)+'/v2/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
USER 65532:65532
ENTRYPOINT ["node","/app/server.mjs"]
CMD []
