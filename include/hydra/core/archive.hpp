#pragma once
// Umbrella header for the archive format: its checksum, writer and reader (core/io/), all three.

#include "hydra/core/io/archive_reader.hpp"
#include "hydra/core/io/archive_writer.hpp"
#include "hydra/core/io/checksum.hpp"
