#!/bin/sh
# Runs once, on an empty data directory (postgres image: /docker-entrypoint-initdb.d).
# Creates the clinrlhf and mlflow roles with passwords from the environment; none is written here.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v clinrlhf_pw="$CLINRLHF_DB_PASSWORD" -v mlflow_pw="$MLFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE clinrlhf LOGIN PASSWORD :'clinrlhf_pw';
ALTER DATABASE clinrlhf OWNER TO clinrlhf;
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_pw';
CREATE DATABASE mlflow OWNER mlflow;
SQL
