"""The outcomes of a check other than a pass; their class names are what the headless runner reads from a notebook."""


class CheckFailed(AssertionError):
    """The learner's code ran but gave a wrong result (the message holds expected vs got and the input)."""


class LearnerError(CheckFailed):
    """The learner's code raised an exception; the message holds its traceback."""


class NotImplementedYet(NotImplementedError):
    """The exercise still holds its stub (or its cell has not been run)."""


STATUS_BY_ERROR = {
    "CheckFailed": "failed",
    "LearnerError": "failed",
    "NotImplementedYet": "not attempted",
}
