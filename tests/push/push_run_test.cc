// Scaffolding: the push tests arrive with issue 7.
