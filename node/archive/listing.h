// What the archive's listings say, read the same way by the Archiver and by
// check_archive: the origins in a bucket and the segment names of one origin.
// Keys that are not the archive's own names are ignored: an operator's stray
// file is not ours to judge, and it is never read.
#pragma once

#include <vector>

#include "protocol/archive_format.h"
#include "storage/object_store.h"

namespace replog::archive {

// The segment names of `origin` among `objects` (one listing of its prefix).
std::vector<SegmentName> segment_names(const std::vector<StoredObject>& objects, OriginId origin);
// The origins that have a prefix under log/ (one delimited listing).
Result<std::vector<OriginId>> origins_in_bucket(ObjectStore& bucket);

}  // namespace replog::archive
