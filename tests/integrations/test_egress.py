"""The outbound-URL policy (integrations.egress) against real local servers: loopback in every
spelling is refused before a byte is sent, connections go to the address that was checked (no
second DNS answer), redirects are checked hop by hop, and an operator-named server is allowed."""

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from unittest import mock

import requests
from django.test import SimpleTestCase, override_settings

from integrations import egress, outgoing
from integrations.models import WebhookDelivery, WebhookSubscription
from tests.api.helpers import ApiTestCase
from tests.api.receiver import Receiver

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1:{port}/hook",
    "http://localhost:{port}/hook",
    "http://127.1:{port}/hook",
    "http://2130706433:{port}/hook",
    "http://0x7f000001:{port}/hook",
    "http://0.0.0.0:{port}/hook",
    "http://[::1]:{port}/hook",
    "http://[::ffff:127.0.0.1]:{port}/hook",
    "http://[::127.0.0.1]:{port}/hook",
    "http://[64:ff9b::7f00:1]:{port}/hook",
    "http://[64:ff9b:1::7f00:1]:{port}/hook",
    "http://[2002:7f00:1::1]:{port}/hook",
]


class Redirector:
    """A local server answering every request with a redirect to ``target``."""

    def __init__(self, target: str):
        self.hits = 0
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            def _redirect(self):
                redirector.hits += 1
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = _redirect

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"

    def stop(self):
        self._server.shutdown()
        self._server.server_close()


class AddressTests(SimpleTestCase):
    def test_it_refuses_every_non_public_range_and_ipv6_forms_embedding_one(self):
        refused = [
            "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
            "100.64.0.1", "0.0.0.0", "192.0.2.1", "198.18.0.1", "224.0.0.1", "255.255.255.255",
            "::1", "::", "fe80::1", "fc00::1", "ff02::1", "2001:db8::1",
            "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "::10.0.0.1",
            "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808",
            "2002:7f00:1::1", "2002:a00:1::", "2002:a9fe:a9fe::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
            "::ffff:0:7f00:1", "::ffff:0:808:808",  # IPv4-translated (SIIT)
            "fec0::1", "5f00::1", "3fff::1", "::8.8.8.8",
        ]  # fmt: skip
        for text in refused:
            with self.subTest(address=text):
                self.assertFalse(egress.is_public(ipaddress.ip_address(text)))

    def test_it_accepts_public_addresses_also_behind_nat64_or_6to4(self):
        for text in (
            "8.8.8.8",
            "2606:4700:4700::1111",
            "2620:4f:8000::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ):
            with self.subTest(address=text):
                self.assertTrue(egress.is_public(ipaddress.ip_address(text)))


@override_settings(EGRESS_ALLOW_PRIVATE=False)
class ConnectionTests(SimpleTestCase):
    def setUp(self):
        self.receiver = Receiver().start()
        self.addCleanup(self.receiver.stop)
        self.port = self.receiver._server.server_address[1]

    def test_loopback_in_every_spelling_is_refused_before_connecting(self):
        for template in LOOPBACK_SPELLINGS:
            url = template.format(port=self.port)
            with self.subTest(url=url):
                with self.assertRaisesMessage(egress.UnsafeURL, "private or reserved"):
                    egress.url_check(url)
                with self.assertRaises(egress.UnsafeURL), egress.session() as http:
                    http.post(url, data=b"{}", timeout=2)
                with self.assertRaises(egress.UnsafeURL), egress.httpx_client(timeout=2) as http:
                    http.post(url, content=b"{}")
        self.assertEqual(self.receiver.requests, [])

    def test_only_http_and_https_are_accepted(self):
        for url in ("ftp://example.com/hook", "file:///etc/passwd", "gopher://x/", "http:///x"):
            with self.subTest(url=url), self.assertRaisesMessage(egress.UnsafeURL, "http"):
                egress.url_check(url)

    def test_the_connection_goes_to_the_address_checked_not_to_a_second_dns_answer(self):
        """DNS rebinding: the name answers a public address first and loopback afterwards."""
        real_getaddrinfo = socket.getaddrinfo
        answers = ["1.1.1.1", "127.0.0.1", "127.0.0.1"]
        asked = []

        def rebinding_dns(host, port, *args, **kwargs):
            if host != "rebind.test":
                return real_getaddrinfo(host, port, *args, **kwargs)
            asked.append(host)
            address = answers[min(len(asked), len(answers)) - 1]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        with (
            mock.patch("socket.getaddrinfo", side_effect=rebinding_dns),
            self.assertRaises(requests.ConnectionError),
            egress.session() as http,
        ):
            http.post(f"http://rebind.test:{self.port}/hook", data=b"{}", timeout=0.5)
        self.assertEqual(asked, ["rebind.test"])  # one lookup, checked and used
        self.assertEqual(self.receiver.requests, [])

    def test_the_host_header_keeps_the_name_while_connecting_to_the_checked_address(self):
        real_getaddrinfo = socket.getaddrinfo

        def dns(host, port, *args, **kwargs):
            if host == "hooks.customer.test":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            return real_getaddrinfo(host, port, *args, **kwargs)

        url = f"http://hooks.customer.test:{self.port}/hook"
        with mock.patch("socket.getaddrinfo", side_effect=dns), egress.session(allow=[url]) as http:
            self.assertEqual(http.post(url, data=b"{}", timeout=2).status_code, 200)
        headers, _body = self.receiver.requests[0]
        self.assertEqual(headers["host"], f"hooks.customer.test:{self.port}")

    def test_a_server_the_operator_named_may_be_private_and_nothing_else(self):
        with egress.session(allow=[self.receiver.url]) as http:
            self.assertEqual(http.post(self.receiver.url, data=b"{}", timeout=2).status_code, 200)
        with egress.httpx_client(timeout=2, allow=[self.receiver.url]) as http:
            self.assertEqual(http.post(self.receiver.url, content=b"{}").status_code, 200)
        self.assertEqual(len(self.receiver.requests), 2)
        other = Receiver().start()
        self.addCleanup(other.stop)
        with self.assertRaises(egress.UnsafeURL), egress.session(allow=[self.receiver.url]) as http:
            http.post(other.url, data=b"{}", timeout=2)
        self.assertEqual(other.requests, [])

    def test_a_redirect_to_a_refused_address_is_not_followed(self):
        redirector = Redirector(self.receiver.url)
        self.addCleanup(redirector.stop)
        allow = [redirector.url]
        with egress.session(allow=allow) as http, self.assertRaises(egress.UnsafeURL):
            http.post(redirector.url, data=b"{}", timeout=2)
        with (
            egress.httpx_client(timeout=2, allow=allow) as http,
            self.assertRaises(egress.UnsafeURL),
        ):
            http.get(redirector.url, follow_redirects=True)
        self.assertEqual(redirector.hits, 2)
        self.assertEqual(self.receiver.requests, [])


@override_settings(EGRESS_ALLOW_PRIVATE=False)
class WebhookEgressTests(ApiTestCase):
    def test_subscribing_loopback_in_any_spelling_is_refused(self):
        for url in ("http://[::ffff:127.0.0.1]:9/hook", "http://[64:ff9b::7f00:1]/hook"):
            with self.subTest(url=url), self.assertRaises(egress.UnsafeURL):
                outgoing.subscription_create(organization=self.org, url=url, events=[])
        self.assertFalse(WebhookSubscription.objects.exists())

    def test_a_delivery_or_its_resend_to_an_ipv6_mapped_loopback_never_arrives(self):
        receiver = Receiver().start()
        self.addCleanup(receiver.stop)
        port = receiver._server.server_address[1]
        subscription = WebhookSubscription.objects.create(
            organization=self.org, url=f"http://[::ffff:127.0.0.1]:{port}/hook", events=[]
        )
        delivery = WebhookDelivery.objects.create(
            organization=self.org, subscription=subscription, event_type="chat.created",
            sequence=1, payload={},
        )  # fmt: skip
        outgoing.delivery_attempt(delivery.pk)
        outgoing.delivery_attempt(outgoing.delivery_resend(delivery=delivery).pk)
        for sent in WebhookDelivery.objects.all():
            self.assertIn("private or reserved", sent.error)
            self.assertIsNone(sent.response_status)
        self.assertEqual(receiver.requests, [])


class TLSTests(SimpleTestCase):
    """Connecting to the checked address keeps TLS about the name: SNI and the certificate
    are checked against the hostname, not the IP."""

    def setUp(self):
        import datetime
        import ssl
        import tempfile

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hooks.customer.test")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("hooks.customer.test")]), False
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256())
        )
        folder = tempfile.mkdtemp()
        self.cafile = f"{folder}/cert.pem"
        with open(self.cafile, "wb") as handle:
            handle.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(f"{folder}/key.pem", "wb") as handle:
            handle.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self.receiver = Receiver()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cafile, f"{folder}/key.pem")
        self.receiver._server.socket = context.wrap_socket(
            self.receiver._server.socket, server_side=True
        )
        self.receiver.start()
        self.addCleanup(self.receiver.stop)
        port = self.receiver._server.server_address[1]
        self.url = f"https://hooks.customer.test:{port}/hook"
        real_getaddrinfo = socket.getaddrinfo

        def dns(host, port, *args, **kwargs):
            if host == "hooks.customer.test":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            return real_getaddrinfo(host, port, *args, **kwargs)

        patcher = mock.patch("socket.getaddrinfo", side_effect=dns)
        patcher.start()
        self.addCleanup(patcher.stop)

    @override_settings(EGRESS_ALLOW_PRIVATE=False)
    def test_https_verifies_the_hostname_on_the_pinned_connection(self):
        import ssl

        with egress.session(allow=[self.url]) as http:
            self.assertEqual(http.post(self.url, data=b"{}", verify=self.cafile).status_code, 200)
        context = ssl.create_default_context(cafile=self.cafile)
        with egress.httpx_client(timeout=2, allow=[self.url], verify=context) as http:
            self.assertEqual(http.post(self.url, content=b"{}").status_code, 200)
        self.assertEqual(len(self.receiver.requests), 2)
        # The same server under another name fails the certificate check.
        other = self.url.replace("hooks.customer.test", "127.0.0.1")
        with egress.session(allow=[other]) as http, self.assertRaises(requests.exceptions.SSLError):
            http.post(other, data=b"{}", verify=self.cafile)
