"""The live inbox: contacts, chats and messages of an organization, the pages where staff
answer customers, and the websocket that keeps every open browser up to date."""
