// Model presets: configs/models/<name>.ini (Boost.Program_options INI files with config.json's names).
#pragma once

#include <string>
#include <vector>

#include "model/opt_config.h"

namespace zo2::cli {

// `name` is a preset name ("opt-1.3b") or a path to an .ini file. Searched in $ZO2_CONFIG_DIR/models,
// <executable dir>/configs/models, <executable dir>/../configs/models and the source tree.
OptConfig load_preset(const std::string& name);
std::vector<std::string> preset_names();
// Directory holding configs/ (for run files and presets), found the same way.
std::string config_root();

}  // namespace zo2::cli
