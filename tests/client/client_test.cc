// Scaffolding: the client library's tests arrive with issue 6.
