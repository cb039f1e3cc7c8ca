package store

// ListQuery exposes the list's SQL to the plan test.
var ListQuery = listQuery
