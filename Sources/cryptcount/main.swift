import CryptCount
print(CipherRegistry.names)
