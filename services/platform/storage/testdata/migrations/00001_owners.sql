-- +goose Up
CREATE TABLE owners (
  name TEXT NOT NULL PRIMARY KEY
);

-- +goose Down
DROP TABLE owners;
