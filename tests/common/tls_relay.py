"""A TLS front for a plain-HTTP test server on 127.0.0.1: terminates TLS with the given
certificate and relays the bytes both ways, so that a client reaches the server over https.
Python's ssl module (OpenSSL), not the client's TLS stack, does the server side.

    python3 tls_relay.py CERT KEY UPSTREAM_PORT     prints the port it listens on, then serves
"""
import socket
import ssl
import sys
import threading

cert, key, upstream_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server = socket.create_server(("127.0.0.1", 0))
print(server.getsockname()[1], flush=True)


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn):
    try:
        tls = context.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()
        return
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=pipe, args=(upstream, tls), daemon=True).start()
    pipe(tls, upstream)


while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
