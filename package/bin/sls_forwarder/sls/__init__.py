"""The SLS side: endpoint, signing, REST client, LogGroup decoder, consumer-group coordinator."""
