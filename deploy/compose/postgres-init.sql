-- One database per service that keeps state: each owns its tables and
-- migrations (services/platform/storage).
CREATE DATABASE consent;
CREATE DATABASE receipts;
CREATE DATABASE shipping;
CREATE DATABASE support;
CREATE DATABASE webhooks;
