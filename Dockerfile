# One image for every service and the migration job (docker-compose.yml picks the command).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir .
COPY . .
ENV PYTHONPATH=/app:/app/gen/python SOULKG_HOST=0.0.0.0
