/*
 * The table that lets tools outside the process find its tasks without
 * the library's debug info, as CPython's _Py_DebugOffsets does: gdb
 * (share/uvtask/gdb/uvtask.py) on a live process or a core file reads
 * `uvt_debug_offsets` and follows `uvt_debug_root` (the list of
 * schedulers), then each scheduler's registry of objects, with the
 * offsets below.  Both libraries export the same table.
 *
 * The layout of the table itself only grows: a reader checks `magic`,
 * takes `version` and `size`, and reads only the fields it knows.  Bump
 * UVT_DEBUG_OFFSETS_VERSION when a meaning changes.
 */
#include "internal.h"
#include "context.h"

#include <stddef.h>

#define UVT_DEBUG_OFFSETS_MAGIC 0x5456554f /* "OUVT" */
/* 1: the objects and tasks; 2: adds the saved-register layout (ctx_*). */
#define UVT_DEBUG_OFFSETS_VERSION 2

/* Every field a uint32; names say which struct and member. */
struct uvt_debug_offsets {
  uint32_t magic, version, size, pointer_size;
  /* scheduler */
  uint32_t sched_list_next, sched_registry, sched_next_id, sched_current;
  /* every object (registry node) */
  uint32_t obj_next, obj_name, obj_file, obj_func, obj_id, obj_line, obj_kind;
  uint32_t obj_kind_task; /* value of obj_kind for a task (1 byte) */
  /* tasks */
  uint32_t task_state, task_parent_id, task_parked_file, task_parked_line,
      task_parked_func, task_parked_what, task_ctx_sp, task_stack_lo,
      task_stack_size;
  uint32_t state_size; /* sizeof the state field */
  /* task states, by value: created, ready, running, parked, done */
  uint32_t state_values[5];
  /* Version 2: where a suspended task's registers are, so that gdb can
   * unwind it (`uvtask bt`).  The switch saved them on the task's stack,
   * at the address stored at task_ctx_sp: the return address at +ctx_pc,
   * the frame pointer at +ctx_fp, the other callee-saved integer
   * registers at +ctx_regs[i]; when it resumes, the stack pointer is that
   * address + ctx_frame_size.  ctx_arch is the ELF machine whose register
   * names apply (62 x86_64: rip, rsp, rbp, then rbx r12 r13 r14 r15;
   * 183 aarch64: pc (= x30), sp, x29, then x19 ... x28), or 0 where the
   * switch is ucontext's and the layout is not described. */
  uint32_t ctx_arch, ctx_frame_size, ctx_pc, ctx_fp, ctx_nregs;
  uint32_t ctx_regs[10];
};

#define OFF(type, member) ((uint32_t)offsetof(type, member))

UVT_EXPORT const struct uvt_debug_offsets uvt_debug_offsets = {
    .magic = UVT_DEBUG_OFFSETS_MAGIC,
    .version = UVT_DEBUG_OFFSETS_VERSION,
    .size = sizeof(struct uvt_debug_offsets),
    .pointer_size = sizeof(void *),
    .sched_list_next = OFF(uvt__sched_t, list_next),
    .sched_registry = OFF(uvt__sched_t, registry),
    .sched_next_id = OFF(uvt__sched_t, next_id),
    .sched_current = OFF(uvt__sched_t, current),
    .obj_next = OFF(uvt__obj_t, next),
    .obj_name = OFF(uvt__obj_t, name),
    .obj_file = OFF(uvt__obj_t, file),
    .obj_func = OFF(uvt__obj_t, func),
    .obj_id = OFF(uvt__obj_t, id),
    .obj_line = OFF(uvt__obj_t, line),
    .obj_kind = OFF(uvt__obj_t, kind),
    .obj_kind_task = UVT_OBJECT_TASK,
    .task_state = OFF(uvt_task_t, state),
    .task_parent_id = OFF(uvt_task_t, parent_id),
    .task_parked_file = OFF(uvt_task_t, parked_at.file),
    .task_parked_line = OFF(uvt_task_t, parked_at.line),
    .task_parked_func = OFF(uvt_task_t, parked_at.func),
    .task_parked_what = OFF(uvt_task_t, parked_at.what),
#ifndef UVT_USE_UCONTEXT
    .task_ctx_sp = OFF(uvt_task_t, ctx.sp),
#endif
    .task_stack_lo = OFF(uvt_task_t, stack.lo),
    .task_stack_size = OFF(uvt_task_t, stack.size),
    .state_size = sizeof(uvt_task_state_t),
    .state_values = {UVT_TASK_CREATED, UVT_TASK_READY, UVT_TASK_RUNNING,
                     UVT_TASK_PARKED, UVT_TASK_DONE},
#ifndef UVT_USE_UCONTEXT
#define REG(i) ((i) < UVT__CTX_NREGS ? (uint32_t)UVT__CTX_REG(i) : 0)
    .ctx_arch = UVT__CTX_ARCH,
    .ctx_frame_size = UVT__CTX_FRAME_SIZE,
    .ctx_pc = UVT__CTX_PC,
    .ctx_fp = UVT__CTX_FP,
    .ctx_nregs = UVT__CTX_NREGS,
    .ctx_regs = {REG(0), REG(1), REG(2), REG(3), REG(4), REG(5), REG(6),
                 REG(7), REG(8), REG(9)},
#endif
};
