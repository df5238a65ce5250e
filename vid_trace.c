// SPDX-License-Identifier: GPL-2.0-only
/*
 * vfio_iommu_dirty - instantiation of the tracepoints of vid_trace.h.
 */
#define CREATE_TRACE_POINTS
#include "vid_trace.h"
