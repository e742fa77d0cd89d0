# uvtask's gdb extension: the tasks of a program that uses libuvtask, on a
# live process or a core file, with the release or the debug library, and
# without the library's debug info.
#
#   (gdb) source /usr/share/uvtask/gdb/uvtask.py
#   (gdb) info uvtasks
#
# It reads the library's exported table `uvt_debug_offsets` (runtime/
# debug_offsets.c: where each field it needs lies) and follows
# `uvt_debug_root` to the list of schedulers, then each scheduler's
# registry of live objects.  Ids print as the report, `uvtask ps` and
# uvt_dump print them: "#S:N".
import struct

import gdb

MAGIC = 0x5456554F
ID_SCHED_SHIFT = 40
STATES = ["created", "ready", "running", "parked", "done"]
FIELDS = ("magic version size pointer_size sched_list_next sched_registry "
          "sched_next_id sched_current obj_next obj_name obj_file obj_func "
          "obj_id obj_line obj_kind obj_kind_task task_state task_parent_id "
          "task_parked_file task_parked_line task_parked_func task_parked_what "
          "task_ctx_sp task_stack_lo task_stack_size state_size").split()


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
    size = head[2]
    n = min(size // 4, len(FIELDS) + 5)
    vals = struct.unpack("<%dI" % n, _mem(base, 4 * n))
    off = dict(zip(FIELDS, vals))
    off["state_values"] = list(vals[len(FIELDS):len(FIELDS) + 5])
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
