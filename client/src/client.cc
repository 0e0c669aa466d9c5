// Scaffolding: filled in by issue 6.
#include "qianmian/client/client.h"
