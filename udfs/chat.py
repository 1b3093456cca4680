"""Instruction data in the messages format: reading it, rendering it as text, templating it for RDS+.

A chat record is a JSON object with a ``messages`` list of ``{"role", "content"}`` objects (as Tulu and
most instruction sets ship), or ShareGPT's ``conversations`` list of ``{"from", "value"}`` objects. Ingest
keeps the list (bronze and silver ``messages``) and puts a flattened rendering in ``text`` so that every text
step (normalization, language ID, dedup, decontamination, PII, the scorers) works on chat records unchanged.

The rendering is the plain template below, which is also what RDS+ embeds when the encoder's tokenizer has no
chat template (open-instruct's Tulu format without the end-of-sequence token)::

    <|user|>
    What is 2 + 2?
    <|assistant|>
    4
"""

from __future__ import annotations

from collections.abc import Sequence

# The fields of a chat record, in the order they are looked for.
MESSAGES_FIELD = "messages"
SHAREGPT_FIELD = "conversations"
# ShareGPT speaker names → the roles of the messages format (others are kept as they are).
SHAREGPT_ROLES = {
    "human": "user",
    "gpt": "assistant",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
}


class MalformedMessages(ValueError):
    """A chat record's message list is not a list of {role, content} strings; the message says where."""


def parse_messages(value, field: str = MESSAGES_FIELD) -> list[dict]:
    """A record's message list as ``[{"role", "content"}]`` dicts.

    Args:
        value: the record's ``messages`` (or ShareGPT ``conversations``) value.
        field: which of the two it is: ``conversations`` reads ``from``/``value`` and maps ShareGPT's
            speaker names (``human`` → ``user``, ``gpt`` → ``assistant``).

    Raises:
        MalformedMessages: not a non-empty list, an item not an object, a role or content missing or not a
            string, an empty role. The message names the field and the item (``messages[2].content is int``).
    """
    role_key, content_key = ("from", "value") if field == SHAREGPT_FIELD else ("role", "content")
    if not isinstance(value, list):
        raise MalformedMessages(f"{field!r} is {type(value).__name__}, not a list")
    if not value:
        raise MalformedMessages(f"{field!r} is an empty list")
    out = []
    for i, item in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise MalformedMessages(f"{where} is {type(item).__name__}, not an object")
        for key in (role_key, content_key):
            if item.get(key) is None:
                raise MalformedMessages(f"{where} has no {key!r}")
            if not isinstance(item[key], str):
                raise MalformedMessages(f"{where}.{key} is {type(item[key]).__name__}, not a string")
        role = item[role_key].strip()
        if not role:
            raise MalformedMessages(f"{where}.{role_key} is empty")
        if field == SHAREGPT_FIELD:
            role = SHAREGPT_ROLES.get(role, role)
        out.append({"role": role, "content": item[content_key]})
    return out


def render_plain(messages: Sequence) -> str:
    """The plain template: ``<|role|>`` on its own line before each message's content (see the module
    docstring). Messages are dicts or Rows with ``role`` and ``content``."""
    return "\n".join(f"<|{m['role']}|>\n{m['content']}" for m in messages)


class ChatTemplate:
    """Renders messages for a model: its tokenizer's chat template when it has one, else ``render_plain``.

    Args:
        tokenizer: a Hugging Face tokenizer (only ``chat_template`` and ``apply_chat_template`` are used).
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.uses_template = bool(getattr(tokenizer, "chat_template", None))

    def render(self, messages: Sequence) -> str:
        """The text the model sees for one conversation (no generation prompt: the record is complete)."""
        msgs = [{"role": m["role"], "content": m["content"]} for m in messages]
        if self.uses_template:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False)
        return render_plain(msgs)
