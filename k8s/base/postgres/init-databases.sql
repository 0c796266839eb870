-- Run once by the postgres image when its data folder is empty. POSTGRES_DB
-- creates the label store's database (labels); MLflow gets its own.
CREATE DATABASE mlflow OWNER al_ray;
