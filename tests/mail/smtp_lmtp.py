#!/usr/bin/python3
"""Test-only SMTP relay for the mail bridge's tests (tests/common/mail.rs starts it).

Two listeners on loopback: one that requires STARTTLS before AUTH (a submission port), one with
TLS from the first byte (an SMTPS port). AUTH (PLAIN/LOGIN) is required before MAIL on both.
Every accepted message is handed to Dovecot's LMTP listener, so it lands in a real mailbox.

Switches, files in --control (the harness writes and removes them; read at every message):
  reply    its first line, e.g. "451 4.3.0 Relay busy", is the answer to DATA instead of
           delivering (a transient or permanent refusal on demand).
  bounce   recipients LMTP refuses are accepted (250) and a delivery status notification
           (RFC 3464, laid out as Postfix writes one) goes back to the envelope sender over LMTP,
           as a relay with a queue does; without it they are refused with 550 at DATA.
Every accepted message's envelope is appended to --control/envelopes.jsonl.

Stops at once on SIGTERM/SIGINT (aiosmtpd's Controller.stop() takes seconds; the process exit
closes the sockets)."""
import argparse
import email.utils
import json
import os
import signal
import smtplib
import ssl
import threading
import uuid

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument('--port', type=int, required=True)
p.add_argument('--tls-port', type=int, required=True)
p.add_argument('--cert', required=True)
p.add_argument('--key', required=True)
p.add_argument('--lmtp', required=True, help='host:port of Dovecot LMTP')
p.add_argument('--user', required=True)
p.add_argument('--password', required=True)
p.add_argument('--control', required=True, help='folder of the switch files')
args = p.parse_args()
LMTP_HOST, LMTP_PORT = args.lmtp.rsplit(':', 1)
HOSTNAME = 'mail.test'


def switch(name):
    try:
        with open(os.path.join(args.control, name), encoding='utf-8') as f:
            return f.readline().strip()
    except FileNotFoundError:
        return None


def lmtp_send(mail_from, rcpts, data):
    """Delivers over LMTP, one transaction per recipient (smtplib's LMTP reads a single reply
    after DATA, where LMTP gives one per recipient); returns {rcpt: (code, text)} of the
    recipients refused."""
    refused = {}
    for rcpt in rcpts:
        with smtplib.LMTP(LMTP_HOST, int(LMTP_PORT), timeout=10) as lmtp:
            try:
                lmtp.sendmail(mail_from, [rcpt], data)
            except smtplib.SMTPRecipientsRefused as e:
                refused.update(e.recipients)
            except smtplib.SMTPDataError as e:
                refused[rcpt] = (e.smtp_code, e.smtp_error)
    return {r: (code, text.decode('utf-8', 'replace') if isinstance(text, bytes) else str(text))
            for r, (code, text) in refused.items()}


def headers_of(data):
    end = data.find(b'\r\n\r\n')
    if end < 0:
        end = data.find(b'\n\n')
    return data if end < 0 else data[:end + 2]


def dsn(mail_from, refused, original):
    """A non-delivery report in Postfix's layout: explanation, message/delivery-status, the
    original message's header."""
    boundary = 'DSN.' + uuid.uuid4().hex
    queue_id = uuid.uuid4().hex[:10].upper()
    now = email.utils.formatdate(localtime=True)
    explanation = ''.join(
        f'<{r}>: host 127.0.0.1[127.0.0.1] said: {code} {text} (in reply to RCPT TO command)\n'
        for r, (code, text) in refused.items())
    per_rcpt = ''.join(
        f'\nFinal-Recipient: rfc822; {r}\nOriginal-Recipient: rfc822;{r}\nAction: failed\n'
        f'Status: {status_of(code, text)}\nRemote-MTA: dns; 127.0.0.1\n'
        f'Diagnostic-Code: smtp; {code} {text}\n'
        for r, (code, text) in refused.items())
    text = (
        f'From: MAILER-DAEMON@{HOSTNAME} (Mail Delivery System)\n'
        f'To: {mail_from}\n'
        'Subject: Undelivered Mail Returned to Sender\n'
        f'Date: {now}\n'
        f'Message-ID: <{queue_id}.{uuid.uuid4().hex[:8]}@{HOSTNAME}>\n'
        'Auto-Submitted: auto-replied\n'
        'MIME-Version: 1.0\n'
        f'Content-Type: multipart/report; report-type=delivery-status;\n\tboundary="{boundary}"\n'
        'Content-Transfer-Encoding: 8bit\n'
        '\n'
        'This is a MIME-encapsulated message.\n'
        '\n'
        f'--{boundary}\n'
        'Content-Description: Notification\n'
        'Content-Type: text/plain; charset=us-ascii\n'
        '\n'
        f'This is the mail system at host {HOSTNAME}.\n'
        '\n'
        "I'm sorry to have to inform you that your message could not\n"
        'be delivered to one or more recipients. It\'s attached below.\n'
        '\n'
        '                   The mail system\n'
        '\n'
        f'{explanation}'
        '\n'
        f'--{boundary}\n'
        'Content-Description: Delivery report\n'
        'Content-Type: message/delivery-status\n'
        '\n'
        f'Reporting-MTA: dns; {HOSTNAME}\n'
        f'X-Postfix-Queue-ID: {queue_id}\n'
        f'X-Postfix-Sender: rfc822; {mail_from}\n'
        f'Arrival-Date: {now}\n'
        f'{per_rcpt}'
        '\n'
        f'--{boundary}\n'
        'Content-Description: Undelivered Message Headers\n'
        'Content-Type: text/rfc822-headers\n'
        'Content-Transfer-Encoding: 8bit\n'
        '\n')
    body = text.replace('\n', '\r\n').encode('utf-8')
    return body + headers_of(original) + f'\r\n--{boundary}--\r\n'.encode()


def status_of(code, text):
    first = text.split(' ', 1)[0]
    parts = first.split('.')
    if len(parts) == 3 and all(x.isdigit() for x in parts):
        return first
    return f'{str(code)[0]}.0.0'


class ToLmtp:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        forced = switch('reply')
        if forced:
            return forced
        data = envelope.original_content
        try:
            refused = lmtp_send(envelope.mail_from, envelope.rcpt_tos, data)
        except (OSError, smtplib.SMTPException) as e:
            return f'451 4.3.0 LMTP delivery failed: {e}'
        if refused and switch('bounce') is not None:
            if envelope.mail_from:
                try:
                    lmtp_send('', [envelope.mail_from], dsn(envelope.mail_from, refused, data))
                except (OSError, smtplib.SMTPException) as e:
                    return f'451 4.3.0 bounce not delivered: {e}'
        elif refused and len(refused) == len(envelope.rcpt_tos):
            first = next(iter(refused.values()))
            return f'550 5.1.1 all recipients refused by LMTP: {first[0]} {first[1]}'
        with open(os.path.join(args.control, 'envelopes.jsonl'), 'a', encoding='utf-8') as f:
            f.write(json.dumps({'from': envelope.mail_from, 'to': envelope.rcpt_tos,
                                'size': len(data)}) + '\n')
        if refused:
            return f'250 2.0.0 OK (refused: {", ".join(refused)})'
        return '250 2.0.0 OK delivered via LMTP'


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (isinstance(auth_data, LoginPassword)
          and auth_data.login == args.user.encode()
          and auth_data.password == args.password.encode())
    return AuthResult(success=ok, handled=False)


ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(args.cert, args.key)
common = dict(hostname='127.0.0.1', authenticator=authenticator, auth_required=True,
              auth_require_tls=True, enable_SMTPUTF8=True,
              data_size_limit=64 * 1024 * 1024, server_hostname=HOSTNAME)
controllers = [
    Controller(ToLmtp(), port=args.port, tls_context=ctx, require_starttls=True, **common),
    # aiosmtpd 1.4 does not count implicit TLS as TLS for auth_require_tls: the whole
    # connection is TLS here, so that check is off on this port only.
    Controller(ToLmtp(), port=args.tls_port, ssl_context=ctx, **dict(common, auth_require_tls=False)),
]
for c in controllers:
    c.start()
print('ready', flush=True)
stop = threading.Event()
for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, lambda *_: stop.set())
stop.wait()
os._exit(0)
