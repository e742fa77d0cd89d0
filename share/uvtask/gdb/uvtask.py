# uvtask's gdb extension: the tasks of a program that uses libuvtask, on a
# live process or a core file, with the release or the debug library, and
# without the library's debug info.
#
#   (gdb) source /usr/share/uvtask/gdb/uvtask.py   (or let auto-load do it)
#   (gdb) info uvtasks
#   (gdb) uvtask bt #1:4
#
# It reads the library's exported table `uvt_debug_offsets` (runtime/
# debug_offsets.c: where each field it needs lies) and follows
# `uvt_debug_root` to the list of schedulers, then each scheduler's
# registry of live objects.  Ids print as the report, `uvtask ps` and
# uvt_dump print them: "#S:N".
#
# `uvtask bt` unwinds a suspended task from the registers its context
# switch saved on the task's stack (table version 2 says where, per
# architecture; see _ARCH_REGS).  gdb can neither write registers on a
# core file nor should it disturb a live process, so nothing is written:
# for the duration of the command a frame unwinder claims the selected
# thread's innermost frame and says that its caller's registers are the
# task's saved ones.  gdb's own unwinders (the library's .eh_frame, the
# program's debug info) then walk from the switch up through the user's
# frames to the coroutine trampoline, which ends the stack.  The frames
# from #1 on are the task's.
import struct

import gdb
import gdb.unwinder

MAGIC = 0x5456554F
ID_SCHED_SHIFT = 40
STATES = ["created", "ready", "running", "parked", "done"]
FIELDS = ("magic version size pointer_size sched_list_next sched_registry "
          "sched_next_id sched_current obj_next obj_name obj_file obj_func "
          "obj_id obj_line obj_kind obj_kind_task task_state task_parent_id "
          "task_parked_file task_parked_line task_parked_func task_parked_what "
          "task_ctx_sp task_stack_lo task_stack_size state_size").split()
# Version 2, after the five state values.
FIELDS_V2 = "ctx_arch ctx_frame_size ctx_pc ctx_fp ctx_nregs".split()
NREGS_MAX = 10

# Per ELF machine: the pc, sp and frame-pointer registers, then the
# callee-saved registers in the order of the table's ctx_regs, then
# registers that take the pc's value too (aarch64's switch returns with
# x30 still holding the return address).
_ARCH_REGS = {
    62: ("rip", "rsp", "rbp", ["rbx", "r12", "r13", "r14", "r15"], []),
    183: ("pc", "sp", "x29", ["x%d" % i for i in range(19, 29)], ["x30"]),
}


def _addr(symbol):
    return int(gdb.parse_and_eval("(unsigned long)&%s" % symbol))


def _mem(addr, n):
    return bytes(gdb.selected_inferior().read_memory(addr, n))


def _u64(addr):
    return struct.unpack("<Q", _mem(addr, 8))[0]


def _i32(addr):
    return struct.unpack("<i", _mem(addr, 4))[0]


def _str(addr, limit=512):
    if addr == 0:
        return None
    try:
        raw = _mem(addr, limit)
    except gdb.MemoryError:
        return "?"
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _offsets():
    base = _addr("uvt_debug_offsets")
    head = struct.unpack("<4I", _mem(base, 16))
    if head[0] != MAGIC:
        raise gdb.GdbError("uvt_debug_offsets: bad magic (not a uvtask library?)")
    version, size = head[1], head[2]
    n = min(size // 4, len(FIELDS) + 5 + len(FIELDS_V2) + NREGS_MAX)
    vals = struct.unpack("<%dI" % n, _mem(base, 4 * n))
    off = dict(zip(FIELDS, vals))
    off["version"] = version
    off["state_values"] = list(vals[len(FIELDS):len(FIELDS) + 5])
    rest = vals[len(FIELDS) + 5:]
    if version >= 2 and len(rest) == len(FIELDS_V2) + NREGS_MAX:
        off.update(zip(FIELDS_V2, rest))
        off["ctx_regs"] = list(rest[len(FIELDS_V2):len(FIELDS_V2) + off["ctx_nregs"]])
    return off


def _fmt_id(i):
    s, n = i >> ID_SCHED_SHIFT, i & ((1 << ID_SCHED_SHIFT) - 1)
    return "#%d:%d" % (s, n) if s else "#%d" % n


def tasks():
    """Every live task: dicts with id, name, state, sites."""
    off = _offsets()
    sched = _u64(_u64(_addr("uvt_debug_root")))
    out = []
    while sched:
        sentinel = sched + off["sched_registry"]
        node = _u64(sentinel + off["obj_next"])
        guard = 0
        while node and node != sentinel and guard < 10000000:
            guard += 1
            kind = _mem(node + off["obj_kind"], 1)[0]
            if kind == off["obj_kind_task"]:
                state = _i32(node + off["task_state"])
                values = off["state_values"]
                t = {
                    "addr": node,
                    "sched": sched,
                    "id": _u64(node + off["obj_id"]),
                    "name": _str(_u64(node + off["obj_name"])),
                    "file": _str(_u64(node + off["obj_file"])),
                    "line": _i32(node + off["obj_line"]),
                    "func": _str(_u64(node + off["obj_func"])),
                    "parent": _u64(node + off["task_parent_id"]),
                    "state": STATES[values.index(state)] if state in values else "?",
                }
                if t["state"] in ("parked", "ready"):
                    t["what"] = _str(_u64(node + off["task_parked_what"]))
                    t["where_file"] = _str(_u64(node + off["task_parked_file"]))
                    t["where_line"] = _i32(node + off["task_parked_line"])
                    t["where_func"] = _str(_u64(node + off["task_parked_func"]))
                out.append(t)
            node = _u64(node + off["obj_next"])
        sched = _u64(sched + off["sched_list_next"])
    return out


class InfoUvtasks(gdb.Command):
    """List uvtask's tasks: id, name, state, parked site, creation site."""

    def __init__(self):
        super().__init__("info uvtasks", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        ts = tasks()
        gdb.write("%d uvtask task%s\n" % (len(ts), "" if len(ts) == 1 else "s"))
        for t in ts:
            head = "task %s '%s' %s" % (_fmt_id(t["id"]), t["name"], t["state"])
            if t["state"] == "parked":
                head += " [%s]" % (t.get("what") or "?")
            gdb.write(head + "\n")
            if t.get("where_file"):
                gdb.write("    parked at   %s:%d in %s\n" % (t["where_file"], t["where_line"],
                                                           t["where_func"]))
            created = "    created at  %s:%d in %s" % (t["file"], t["line"], t["func"])
            if t["parent"]:
                created += ", by task %s" % _fmt_id(t["parent"])
            gdb.write(created + "\n")


InfoUvtasks()


# ---- uvtask bt ---------------------------------------------------------------

def _parse_id(arg):
    """'#1:4', '1:4' or a bare '4' -> (scheduler or None, number)."""
    a = arg.strip().lstrip("#")
    try:
        if ":" in a:
            s, n = a.split(":", 1)
            return int(s), int(n)
        return None, int(a)
    except ValueError:
        raise gdb.GdbError("uvtask bt: give a task id as `info uvtasks` shows it, "
                           "e.g. #1:4 (or 4)")


def _find_task(arg):
    want_s, want_n = _parse_id(arg)
    hits = []
    for t in tasks():
        s, n = t["id"] >> ID_SCHED_SHIFT, t["id"] & ((1 << ID_SCHED_SHIFT) - 1)
        if n == want_n and (want_s is None or s == want_s):
            hits.append(t)
    if not hits:
        raise gdb.GdbError("uvtask bt: no live task %s (see `info uvtasks`)" % arg.strip())
    if len(hits) > 1:
        raise gdb.GdbError("uvtask bt: %s is ambiguous: %s" % (
            arg.strip(), ", ".join(_fmt_id(t["id"]) for t in hits)))
    return hits[0]


def _saved_registers(off, t):
    """[(register name, value)] the task resumes with, read from its stack."""
    if off.get("version", 1) < 2 or "ctx_arch" not in off:
        raise gdb.GdbError("uvtask bt: this library's uvt_debug_offsets (version %d) "
                           "does not describe saved registers; it needs version 2"
                           % off.get("version", 1))
    names = _ARCH_REGS.get(off["ctx_arch"])
    if names is None:
        raise gdb.GdbError("uvtask bt: the library's context switch (%s) has no "
                           "described register layout; build it without UVT_UCONTEXT"
                           % ("ucontext" if off["ctx_arch"] == 0
                              else "ELF machine %d" % off["ctx_arch"]))
    pc_name, sp_name, fp_name, reg_names, pc_copies = names
    if len(reg_names) != off["ctx_nregs"]:
        raise gdb.GdbError("uvtask bt: the table names %d saved registers, this "
                           "script knows %d for ELF machine %d"
                           % (off["ctx_nregs"], len(reg_names), off["ctx_arch"]))
    if t["state"] not in ("parked", "ready"):
        raise gdb.GdbError("uvtask bt: task %s is %s: only a parked or ready task has "
                           "saved registers%s" % (
                               _fmt_id(t["id"]), t["state"],
                               " (a running task's frames are its thread's: `bt`)"
                               if t["state"] == "running" else ""))
    if _u64(t["addr"] + off["task_stack_lo"]) == 0:
        raise gdb.GdbError("uvtask bt: task %s has not run yet: it has no stack"
                           % _fmt_id(t["id"]))
    sp = _u64(t["addr"] + off["task_ctx_sp"])
    if sp == 0:
        raise gdb.GdbError("uvtask bt: task %s has no saved stack pointer" % _fmt_id(t["id"]))
    try:
        pc = _u64(sp + off["ctx_pc"])
    except gdb.MemoryError:
        pc = 0
    if pc == 0:
        # gdb's gcore copies a mapping whole or not at all, and a mapping
        # holding a guard region (Linux 6.13's MADV_GUARD_INSTALL, which
        # uvtask uses for stack guards) cannot be read whole.
        raise gdb.GdbError(
            "uvtask bt: task %s's stack is not in this core (its saved registers read "
            "as zeros).  gdb's gcore cannot copy task stacks that have guard regions "
            "(Linux 6.13+): take the core with the kernel's dump instead (ulimit -c "
            "unlimited; kill -ABRT PID), or run the program with "
            "UVTASK_NO_GUARD_REGIONS=1" % _fmt_id(t["id"]))
    regs = [(pc_name, pc), (sp_name, sp + off["ctx_frame_size"]),
            (fp_name, _u64(sp + off["ctx_fp"]))]
    regs += [(n, _u64(sp + o)) for n, o in zip(reg_names, off["ctx_regs"])]
    regs += [(n, pc) for n in pc_copies]
    return sp, regs


class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _TaskUnwinder(gdb.unwinder.Unwinder):
    """Idle unless `uvtask bt` is running: then the innermost frame's caller
    is the task, as its saved registers say."""

    def __init__(self):
        super().__init__("uvtask-task")
        self.task = None  # (saved sp, [(register, value)])

    def __call__(self, pending):
        if self.task is None:
            return None
        saved_sp, regs, innermost = self.task
        if hasattr(pending, "level"):  # gdb 11 and later
            if pending.level() != 0:
                return None
        elif (int(pending.read_register(regs[0][0])), int(pending.read_register(regs[1][0]))) \
                != innermost:
            return None
        u64 = gdb.lookup_type("unsigned long")
        # The id's stack address must be inner to (below) the task's first
        # frame, or gdb stops at it as a stack going the wrong way: the
        # thread's own stack may lie above or below the task's.
        info = pending.create_unwind_info(
            _FrameId(gdb.Value(saved_sp - 16).cast(u64), pending.read_register(regs[0][0])))
        for name, value in regs:
            info.add_saved_register(name, gdb.Value(value).cast(u64))
        return info


_unwinder = _TaskUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def _frame_line(level, frame):
    pc = frame.pc()
    name = frame.name() or "??"
    line = "#%-2d 0x%016x in %s ()" % (level, pc, name)
    sal = frame.find_sal()
    if sal.symtab is not None and sal.line > 0:
        line += " at %s:%d" % (sal.symtab.filename, sal.line)
    else:
        solib = gdb.solib_name(pc)
        if solib:
            line += " from %s" % solib
    return line


def _level_of(frame):
    level = 0
    while frame is not None and frame.newer() is not None:
        frame = frame.newer()
        level += 1
    return level


def _select_level(level):
    """Select the thread's frame `level` again (gdb forgets the selection
    when its frame cache is flushed)."""
    frame = gdb.newest_frame()
    while level > 0 and frame.older() is not None:
        frame = frame.older()
        level -= 1
    frame.select()


class UvtaskBt(gdb.Command):
    """Backtrace of a parked (or ready) task: uvtask bt ID

ID as `info uvtasks` prints it (#1:4), or its number alone (4) when only
one scheduler has it.  The frames are unwound from the registers the
task's context switch saved; the innermost is the switch's caller inside
uvtask, the outermost the coroutine trampoline."""

    def __init__(self):
        super().__init__("uvtask bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        off = _offsets()
        t = _find_task(arg)
        saved_sp, regs = _saved_registers(off, t)
        gdb.write("task %s '%s' %s%s\n" % (_fmt_id(t["id"]), t["name"], t["state"],
                                           " [%s]" % t["what"] if t.get("what") else ""))
        newest = gdb.newest_frame()
        innermost = (int(newest.read_register(regs[0][0])), int(newest.read_register(regs[1][0])))
        selected = _level_of(gdb.selected_frame())
        _unwinder.task = (saved_sp, regs, innermost)
        gdb.invalidate_cached_frames()
        try:
            frame = gdb.newest_frame().older()
            level = 0
            while frame is not None and level < 256:
                gdb.write(_frame_line(level, frame) + "\n")
                level += 1
                try:
                    frame = frame.older()
                except gdb.error as e:
                    gdb.write("(unwinding stopped: %s)\n" % e)
                    break
            if level == 0:
                gdb.write("(no frames: the saved registers could not be unwound)\n")
        finally:
            _unwinder.task = None
            gdb.invalidate_cached_frames()
            _select_level(selected)


class Uvtask(gdb.Command):
    """uvtask's commands: uvtask bt ID (and `info uvtasks`)."""

    def __init__(self):
        super().__init__("uvtask", gdb.COMMAND_STACK, prefix=True)


Uvtask()
UvtaskBt()
