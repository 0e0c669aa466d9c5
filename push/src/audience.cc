// Scaffolding: filled in by issue 7.
#include "qianmian/push/audience.h"
