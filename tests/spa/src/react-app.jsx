// A small React app on reauth-client/react: sign in, see the user (and the API's answer through
// useAuth().fetch), sign out. Driven by check-react.mjs with real clicks in Chromium.
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import init, { AuthClient } from "reauth-client";
import { AuthProvider, useAuth } from "reauth-client/react";

function SignIn() {
  const { login } = useAuth();
  const [problem, setProblem] = useState("");
  const submit = (event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    login(form.get("username"), form.get("password")).catch((error) => setProblem(error.code));
  };
  return (
    <form onSubmit={submit}>
      <p id="state">signed out</p>
      <input id="username" name="username" autoComplete="username" />
      <input id="password" name="password" type="password" autoComplete="current-password" />
      <button id="login" type="submit">Sign in</button>
      <p id="problem">{problem}</p>
    </form>
  );
}

function Profile() {
  const { user, fetch, logout } = useAuth();
  const [fromApi, setFromApi] = useState("");
  useEffect(() => {
    fetch("/api/me")
      .then((response) => response.json())
      .then((me) => setFromApi(me.username));
  }, [fetch]);
  return (
    <div>
      <p id="state">
        signed in as <span id="user">{user.username}</span>
      </p>
      <p id="api">{fromApi}</p>
      <button id="logout" type="button" onClick={() => logout()}>
        Sign out
      </button>
    </div>
  );
}

function App() {
  const { isLoading, isAuthenticated } = useAuth();
  if (isLoading) return <p id="state">loading</p>;
  return isAuthenticated ? <Profile /> : <SignIn />;
}

await init();
// One client per page, created outside React: StrictMode's double effects must not free it.
const auth = new AuthClient({ baseUrl: location.origin });
createRoot(document.querySelector("#root")).render(
  <StrictMode>
    <AuthProvider client={auth}>
      <App />
    </AuthProvider>
  </StrictMode>,
);
