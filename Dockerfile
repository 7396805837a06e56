# Pixel Reasoner Server: CPU image. For CUDA, build FROM an nvidia/cuda runtime base with Node 20
# and, after `npm ci`, run ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install
# (see README, "GPU"; .npmrc's ignore-scripts keeps `npm ci` itself from downloading anything).
FROM node:20-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY bin ./bin
COPY src ./src
COPY proto ./proto
COPY public ./public
COPY models ./models
RUN chown -R node:node /app
USER node
ENV PIXELREASONER_HOST=0.0.0.0 PIXELREASONER_PORT=8000
EXPOSE 8000 50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:8000/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "bin/pixelreasoner.js", "serve"]
