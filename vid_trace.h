/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * vfio_iommu_dirty - tracepoints.
 *
 * One event per user-visible operation, carrying the container's debugfs
 * id (the same number as /sys/kernel/debug/vfio_iommu_dirty/<id>), the
 * IOVA range, what it did and the errno it returned, so that an operator
 * can follow a migration with nothing but tracefs:
 *
 *   echo 1 > /sys/kernel/tracing/events/vfio_iommu_dirty/enable
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM vfio_iommu_dirty

#if !defined(VID_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define VID_TRACE_H

#include <linux/tracepoint.h>

DECLARE_EVENT_CLASS(vid_range,
		    TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
		    TP_ARGS(id, iova, size, done, ret),
		    TP_STRUCT__entry(__field(int, id)
				     __field(u64, iova)
				     __field(u64, size)
				     __field(u64, done)
				     __field(int, ret)),
		    TP_fast_assign(__entry->id = id;
				   __entry->iova = iova;
				   __entry->size = size;
				   __entry->done = done;
				   __entry->ret = ret;),
		    TP_printk("container=%d iova=0x%llx size=0x%llx done=0x%llx ret=%d",
			      __entry->id, __entry->iova, __entry->size,
			      __entry->done, __entry->ret));

DECLARE_EVENT_CLASS(vid_switch,
		    TP_PROTO(int id, int on, u64 mappings, int ret),
		    TP_ARGS(id, on, mappings, ret),
		    TP_STRUCT__entry(__field(int, id)
				     __field(int, on)
				     __field(u64, mappings)
				     __field(int, ret)),
		    TP_fast_assign(__entry->id = id;
				   __entry->on = on;
				   __entry->mappings = mappings;
				   __entry->ret = ret;),
		    TP_printk("container=%d %s mappings=%llu ret=%d",
			      __entry->id, __entry->on ? "start" : "stop",
			      __entry->mappings, __entry->ret));

/* MAP_DMA: done is the size mapped (0 on failure). */
DEFINE_EVENT(vid_range, vid_map,
	     TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
	     TP_ARGS(id, iova, size, done, ret));

/* UNMAP_DMA: done is the size unmapped. */
DEFINE_EVENT(vid_range, vid_unmap,
	     TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
	     TP_ARGS(id, iova, size, done, ret));

/* UNMAP_DMA with a dirty bitmap: done is the size unmapped. */
DEFINE_EVENT(vid_range, vid_unmap_bitmap,
	     TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
	     TP_ARGS(id, iova, size, done, ret));

/* GET_BITMAP: done is the page size of the bitmap. */
DEFINE_EVENT(vid_range, vid_get_bitmap,
	     TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
	     TP_ARGS(id, iova, size, done, ret));

/* pin_pages / unpin_pages: size is in pages; done is pages pinned. */
DEFINE_EVENT(vid_range, vid_pin,
	     TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
	     TP_ARGS(id, iova, size, done, ret));

DEFINE_EVENT(vid_range, vid_unpin,
	     TP_PROTO(int id, u64 iova, u64 size, u64 done, int ret),
	     TP_ARGS(id, iova, size, done, ret));

/* Dirty tracking switched on (START) or off (STOP). */
/*
 * One run of consecutive dirty base pages in a report (GET_BITMAP or
 * UNMAP with a bitmap), at the container's smallest IOMMU page size:
 * what a migration tool shows as the pages a sync found dirty. Emitted
 * while the report is written, before it can still fail.
 */
TRACE_EVENT(vid_dirty_run,
	    TP_PROTO(int id, u64 iova, u64 npages, unsigned int shift),
	    TP_ARGS(id, iova, npages, shift),
	    TP_STRUCT__entry(__field(int, id)
			     __field(u64, iova)
			     __field(u64, npages)
			     __field(unsigned int, shift)),
	    TP_fast_assign(__entry->id = id;
			   __entry->iova = iova;
			   __entry->npages = npages;
			   __entry->shift = shift;),
	    TP_printk("container=%d iova=0x%llx npages=%llu pgshift=%u",
		      __entry->id, __entry->iova, __entry->npages,
		      __entry->shift));

DEFINE_EVENT(vid_switch, vid_dirty_tracking,
	     TP_PROTO(int id, int on, u64 mappings, int ret),
	     TP_ARGS(id, on, mappings, ret));

#endif /* VID_TRACE_H */

/* Out of tree: tell define_trace.h where this header is. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE vid_trace
#include <trace/define_trace.h>
