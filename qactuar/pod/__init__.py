"""The pod: background coroutines ("beans") in the server's loop, or on their own.

Public API: `pass_context`, `current_pod()`, the contexts and `Pod`.  See
docs/pod.md.  Standard library only.
"""

from __future__ import annotations

from qactuar.pod.bean import BeanSpec, pass_context
from qactuar.pod.context import BeanContext, PodContext, UnknownBean, current_pod
from qactuar.pod.pod import EXIT_BEAN_FAILED, EXIT_BEAN_RAISED, Bean, Pod

__all__ = ["EXIT_BEAN_FAILED", "EXIT_BEAN_RAISED", "Bean", "BeanContext", "BeanSpec", "Pod",
           "PodContext", "UnknownBean", "current_pod", "pass_context"]
