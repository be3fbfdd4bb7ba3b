// The one header an embedding application includes: Node and its options,
// Value, Status/Result, TypeRegistry, MethodRegistry, the bindings of an
// application's own types (binding.h), change feeds (changes.h), the log as a
// sequence (log_sequence.h) and the small types (update ids, paths,
// conflicts). Nothing from LMDB, ZeroMQ or msgpack-c is
// reachable from here; link replog::replog (find_package(replog)).
#pragma once

#include "replog/binding.h"
#include "replog/changes.h"
#include "replog/log_sequence.h"
#include "replog/methods.h"
#include "replog/node.h"
#include "replog/schema.h"
#include "replog/status.h"
#include "replog/types.h"
#include "replog/value.h"
