// Scaffolding: filled in by issue 6.
#include "qianmian/server/server.h"
