-- +goose Up
CREATE TABLE items (
  id TEXT NOT NULL PRIMARY KEY,
  owner TEXT NOT NULL REFERENCES owners (name),
  n BIGINT NOT NULL,
  at BIGINT
);

-- +goose Down
DROP TABLE items;
