"""The peer: Twilio's documented Flask pattern for receiving SMS.

Checks X-Twilio-Signature with RequestValidator, answers TwiML, stores nothing. Run by gunicorn
with one worker (benchmarks/inbound.py does it):

    TWILIO_AUTH_TOKEN=... PUBLIC_URL=http://127.0.0.1:PORT gunicorn -w 1 benchmarks.peers.flask_sms:app
"""

import os
from functools import wraps

from flask import Flask, abort, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])


def validate_twilio_request(view):
    @wraps(view)
    def decorated(*args, **kwargs):
        # As Twilio's tutorial does: the URL Twilio called, the form, the header.
        url = os.environ.get("PUBLIC_URL", "").rstrip("/") + request.full_path.rstrip("?")
        if not validator.validate(url, request.form, request.headers.get("X-Twilio-Signature", "")):
            return abort(403)
        return view(*args, **kwargs)

    return decorated


@app.post("/webhooks/twilio/inbound")
@validate_twilio_request
def incoming_sms():
    response = MessagingResponse()
    return str(response), 200, {"Content-Type": "text/xml"}
