// Scaffolding: the server's tests arrive with issue 6.
