"""The edge: HTTP pages, JSON routes and sockets. No show logic lives here."""
