// Process group: rank, world size, local rank, and the few collectives zeroth-order training needs.
#pragma once

namespace zo2 {

struct DistContext {
  int rank = 0;
  int world = 1;
  int local_rank = 0;
  bool is_root() const { return rank == 0; }
};

}  // namespace zo2
