"""moto's server, with the one fix the pipeline needs: events keep their `account` on the way to SQS.

moto delivers an event sent with PutEvents to an SQS target through a default input template that
leaves out `account` (its input paths map has it; the template does not use it). On AWS the target
receives the whole event, and the functions parse it with Powertools' `EventBridgeModel`, where
`account` is required. So the sandbox runs moto with that template completed.

    python -m sandbox.moto_server -H 127.0.0.1 -p 5000     (the arguments of moto_server)
"""

from __future__ import annotations

import sys

COMPLETE_EVENT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", "account": "<account>", '
    '"time": <time>, "region": "<region>", "resources": <resources>, "detail": <detail>}'
)


def complete_default_event_template() -> bool:
    """Put `account` into moto's default event template; False when this moto has no such template."""
    from moto.events.utils import EventTemplateParser

    template = getattr(EventTemplateParser, "DEFAULT_EVENT_INPUT_TEMPLATE", None)
    if not isinstance(template, str):
        return False
    if "<account>" not in template:
        EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = COMPLETE_EVENT_TEMPLATE
    return True


def main() -> None:
    if not complete_default_event_template():
        print("sandbox.moto_server: moto has no default event template to complete; running it as is", file=sys.stderr)
    from moto.server import main as moto_main

    moto_main(sys.argv[1:])


if __name__ == "__main__":
    main()
