#include "common/collectives.h"

#include <cstdlib>

namespace zo2 {

void SingleProcess::abort(int code) { std::exit(code); }

}  // namespace zo2
