"""Static check of the pickle inside a torch checkpoint: which Python names would it import?

A torch `.pt` file is a zip whose `data.pkl` is a pickle. Unpickling can call any importable
function (`builtins.exec`, `os.system`), which is why the worker loads checkpoints with
`torch.load(weights_only=True)`. The API never unpickles; it only walks the opcodes with
`pickletools.genops` (a parser that executes nothing) and refuses a file that names anything
outside what a state dict needs: tensors, storages, `OrderedDict`. The refusal is immediate,
so a hostile file never waits in the store for a worker.
"""

from __future__ import annotations

import pickletools
import re
from collections.abc import Iterator

# What torch.save writes for state dicts (and our {"state_dict", "structure"} records),
# plus the few plain value types torch's own weights-only loader also accepts.
_ALLOWED_EXACT = frozenset(
    {
        ("collections", "OrderedDict"),
        ("torch", "Size"),
        ("torch", "device"),
        ("torch.nn.parameter", "Parameter"),
        ("torch._utils", "_rebuild_tensor_v2"),
        ("torch._utils", "_rebuild_parameter"),
        ("torch._utils", "_rebuild_parameter_with_state"),
        ("torch._utils", "_rebuild_qtensor"),
    }
)
# torch.FloatStorage, torch.HalfStorage, ... and dtypes (torch.float32, torch.bfloat16, ...).
_TORCH_NAME = re.compile(
    r"^(?:[A-Z][A-Za-z0-9]*Storage|u?int\d+|float\d+|bfloat16|complex\d+|bool)$"
)
_STRING_PUSHES = frozenset(
    {
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
        "UNICODE",
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
    }
)
_MEMO_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
# Extension codes name callables through copyreg's registry: not checkable here.
_EXTENSIONS = frozenset({"EXT1", "EXT2", "EXT4"})


class UnsafePickle(ValueError):
    """The pickle names something outside the allowlist, or cannot be checked."""


def is_allowed(module: str, name: str) -> bool:
    if (module, name) in _ALLOWED_EXACT:
        return True
    return module == "torch" and bool(_TORCH_NAME.match(name))


def imported_names(data: bytes) -> Iterator[tuple[str, str]]:
    """Every (module, name) the pickle would import, without executing it.

    STACK_GLOBAL (protocol 4+) takes its two operands from the stack; they are accepted only
    when the two pushes right before it (memo bookkeeping aside) are strings we can read.
    """
    memo: dict[int, str | None] = {}
    pushed: list[str | None] = []  # the values of the most recent pushes, newest last
    try:
        for opcode, arg, _pos in pickletools.genops(data):
            op = opcode.name
            if op in _EXTENSIONS:
                raise UnsafePickle("it uses pickle extension codes")
            if op in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                yield module, name
                pushed.append(None)
            elif op == "STACK_GLOBAL":
                if len(pushed) < 2 or pushed[-1] is None or pushed[-2] is None:
                    raise UnsafePickle("it imports a name that cannot be read statically")
                yield pushed[-2], pushed[-1]
                pushed.append(None)
            elif op in _STRING_PUSHES:
                pushed.append(arg if isinstance(arg, str) else None)
            elif op in _MEMO_GETS:
                pushed.append(memo.get(int(str(arg))))
            elif op == "MEMOIZE":
                memo[len(memo)] = pushed[-1] if pushed else None
            elif op in _MEMO_PUTS:
                memo[int(str(arg))] = pushed[-1] if pushed else None
            else:
                # Any other opcode may change the stack: what was pushed before is unknown now.
                pushed.append(None)
            del pushed[:-2]
    except UnsafePickle:
        raise
    except Exception as exc:  # genops raises ValueError and friends on malformed data
        raise UnsafePickle(f"it is not a valid pickle ({exc})") from None


def check_state_dict_pickle(data: bytes) -> None:
    """Raise UnsafePickle unless every imported name is on the state-dict allowlist."""
    refused = sorted({f"{m}.{n}" for m, n in imported_names(data) if not is_allowed(m, n)})
    if refused:
        shown = ", ".join(refused[:3]) + (", ..." if len(refused) > 3 else "")
        raise UnsafePickle(f"it would import {shown}")
