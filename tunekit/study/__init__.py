"""The study layer: arms x label budgets x seeds on top of the toolkit, and its report.

Nothing in `tunekit/` outside this package imports from it.
"""

from tunekit.study.arguments import StudyArguments
from tunekit.study.runner import Study

__all__ = ["Study", "StudyArguments"]
