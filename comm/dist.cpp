#include "comm/dist.h"
