# One image for every process of the stack; docker-compose.yml picks the command.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cloudreco cloudreco
COPY gateway gateway
COPY matcher matcher
COPY shared shared
# hnswlib compiles with -march=native by default; a portable image must not.
ENV HNSWLIB_NO_NATIVE=1
RUN pip install --no-cache-dir .
ENTRYPOINT ["cloudreco"]
