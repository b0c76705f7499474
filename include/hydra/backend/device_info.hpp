#pragma once
// What a backend reports about the devices it can run on (Backend::devices()): enough for a tool
// to list them and to say which one a run used, without naming a device API above the seam.

#include <cstddef>
#include <string>

namespace hydra {

struct device_info {
  std::string id;                 // how a tool names it: "cpu", "cuda:0"
  std::string name;               // what it is: "host (2 hardware threads)", "NVIDIA H200 (sm_90)"
  std::size_t memory_bytes = 0;   // its memory in bytes (the host's physical memory for cpu)
};

} // namespace hydra
